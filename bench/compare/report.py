"""The tables bench/compare.sh prints, from what it measured (Markdown, readable as text).

    report.py RESULTS.tsv RSS.tsv SIGNINS.tsv CLK_TCK SIGNIN_CONCURRENCY

RESULTS: round, target, wrk's figures (key=value), then CPU ticks per server, of the load
generator (the script's reaped children) and of the whole machine during the row.
"""
import json
import os
import statistics
import sys

results_path, rss_path, signins_path, clk, signin_conc = sys.argv[1:]
clk = int(clk)

LABELS = {
    "upstream": "static upstream (nginx, direct)",
    "proxy": "nginx `proxy_pass` (no auth)",
    "apache": "Apache mod_auth_openidc, session cookie",
    "pc-cookie": "Portcullis, session cookie",
    "pc-token": "Portcullis, API token",
    "pc-dpop": "Portcullis, DPoP-bound session, API path (proof per request)",
    "pc-fa": "Portcullis forward-auth behind nginx, session cookie",
}
# The servers a target goes through besides the upstream (its "gateway").
GATEWAY = {
    "upstream": [],
    "proxy": ["nginx-proxy"],
    "apache": ["apache"],
    "pc-cookie": ["portcullis"],
    "pc-token": ["portcullis"],
    "pc-dpop": ["portcullis"],
    "pc-fa": ["nginx-fa", "portcullis"],
}
SERVER_NAMES = {"nginx-proxy": "nginx", "apache": "Apache", "portcullis": "Portcullis", "nginx-fa": "nginx"}
SERVERS = ["upstream", "nginx-proxy", "apache", "portcullis", "nginx-fa"]

rows = {}  # target -> list of per-round dicts
order = []
for line in open(results_path):
    f = line.rstrip("\n").split("\t")
    rnd, target, wrk = int(f[0]), f[1], dict(kv.split("=") for kv in f[2].split())
    ticks = dict(kv.split("=") for kv in f[3:])
    n = int(wrk["requests"])
    secs = int(wrk["duration_us"]) / 1e6
    us = lambda t: int(t) / clk * 1e6 / n  # CPU ticks -> µs per request
    busy = {s: int(ticks[s]) for s in SERVERS}
    gen = int(ticks["generator"])
    others = int(ticks["machine"]) - sum(busy.values()) - gen
    r = {
        "round": rnd,
        "rps": n / secs,
        "p50": int(wrk["p50_us"]),
        "p99": int(wrk["p99_us"]),
        "errors": int(wrk["not200"]) + int(wrk["nomarker"]) + int(wrk["sockerr"]),
        "cpu": {s: us(busy[s]) for s in SERVERS},
        "gateway": sum(us(busy[s]) for s in GATEWAY[target]),
        "generator": us(gen),
        "irq": us(int(ticks["irq"])),
        "upconns": int(ticks["upconns"]),
        # Share of the machine's capacity used by everything else (other people's work).
        "others": max(0, others) / clk / secs / os.cpu_count(),
    }
    if target not in rows:
        rows[target] = []
        order.append(target)
    rows[target].append(r)


def med(xs):
    return statistics.median(xs)


def spread(xs, fmt):
    """median (min–max) when there are several rounds."""
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(med(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def thousands(x):
    return f"{x:,.0f}".replace(",", " ")


def ms(us):
    return f"{us / 1000:.2f} ms"


def one(x):
    return f"{x:.1f}"


def two(x):
    return f"{x:.2f}"


rounds = max(len(v) for v in rows.values())
print()
print(f"Load: medians over {rounds} interleaved rounds (min–max). CPU = user + system time per request,")
print("summed over all processes of each server; \"gateway\" = the servers in front of the upstream.")
print()
print("| target | requests/s | p50 | p99 | errors | gateway CPU µs/request | upstream CPU µs/request |")
print("|---|---|---|---|---|---|---|")
for t in order:
    rs = rows[t]
    gw = spread([r["gateway"] for r in rs], one) if GATEWAY[t] else "—"
    if len(GATEWAY[t]) > 1:
        parts = ", ".join(
            f"{SERVER_NAMES[s]} {one(med([r['cpu'][s] for r in rs]))}" for s in GATEWAY[t]
        )
        gw += f": {parts}"
    print(
        f"| {LABELS[t]} | {spread([r['rps'] for r in rs], thousands)} | {ms(med([r['p50'] for r in rs]))} "
        f"| {ms(med([r['p99'] for r in rs]))} | {sum(r['errors'] for r in rs)} | {gw} "
        f"| {spread([r['cpu']['upstream'] for r in rs], one)} |"
    )

print()
print("Per target (medians): the load generator's CPU per request (wrk, which also checks every")
print("answer), the kernel's interrupt work per request (irq + softirq: loopback packets, charged to")
print("no process), the connections the upstream accepted during the row (wrk's own for the direct")
print("row; a gateway's connection reuse otherwise), and the share of the machine's cores other")
print("processes used meanwhile.")
print()
print("| target | wrk CPU µs/request | irq + softirq µs/request | upstream connections opened | other processes, % of all cores |")
print("|---|---|---|---|---|")
for t in order:
    rs = rows[t]
    print(
        f"| {LABELS[t]} | {one(med([r['generator'] for r in rs]))} | {one(med([r['irq'] for r in rs]))} "
        f"| {med([r['upconns'] for r in rs]):.0f} | {med([r['others'] for r in rs]) * 100:.0f} % |"
    )


def ratio_row(t, base):
    """Per-round ratios (the targets of a round ran minutes apart at most), median (min–max)."""
    a = {r["round"]: r for r in rows[t]}
    b = {r["round"]: r for r in rows[base]}
    common = sorted(set(a) & set(b))
    rps = [a[k]["rps"] / b[k]["rps"] for k in common]
    cpu = [a[k]["gateway"] / b[k]["gateway"] for k in common]
    return spread(rps, two), spread(cpu, two)


if "proxy" in rows and "apache" in rows:
    print()
    print("Ratios, per round then median (min–max): requests/s and gateway CPU per request.")
    print()
    print("| Portcullis target | req/s ÷ nginx proxy_pass | CPU ÷ nginx proxy_pass | req/s ÷ mod_auth_openidc | CPU ÷ mod_auth_openidc |")
    print("|---|---|---|---|---|")
    for t in order:
        if not t.startswith("pc-"):
            continue
        n_rps, n_cpu = ratio_row(t, "proxy")
        a_rps, a_cpu = ratio_row(t, "apache")
        print(f"| {LABELS[t]} | {n_rps} | {n_cpu} | {a_rps} | {a_cpu} |")

if os.path.exists(signins_path):
    print()
    print(f"Sign-ins: complete sign-ins as alice ({signin_conc} at a time), each a fresh browser through the")
    print("OP's login form; CPU per sign-in of the gateway and of the OP (oidc-provider, Node.js).")
    print()
    print("| gateway | sign-ins | sign-ins/s | gateway CPU ms/sign-in | OP CPU ms/sign-in | callback p50 | callback p99 |")
    print("|---|---|---|---|---|---|---|")
    for line in open(signins_path):
        f = line.rstrip("\n").split("\t")
        kind, stats = f[0], json.loads(f[1])
        ticks = dict(kv.split("=") for kv in f[2:])
        n = stats["n"]
        gw = "portcullis" if kind == "portcullis" else "apache"
        name = "Portcullis" if kind == "portcullis" else "Apache mod_auth_openidc"
        print(
            f"| {name} | {n} | {n / stats['seconds']:.1f} | {int(ticks[gw]) / clk * 1e3 / n:.2f} "
            f"| {int(ticks['op']) / clk * 1e3 / n:.2f} | {stats['callback_p50_ms']:.1f} ms | {stats['callback_p99_ms']:.1f} ms |"
        )

rss = {}
for line in open(rss_path):
    phase, server, kb = line.split()
    rss.setdefault(server, {}).setdefault(phase, []).append(int(kb))
print()
print("Resident memory (VmRSS summed over each server's processes): idle after start-up and sign-in,")
print("under load (sampled halfway through each of its rows; the largest), and after the last round.")
print()
print("| server | idle | under load | after the load |")
print("|---|---|---|---|")
names = {
    "upstream": "static upstream (nginx)",
    "nginx-proxy": "nginx proxy_pass",
    "apache": "Apache mod_auth_openidc",
    "portcullis": "Portcullis",
    "nginx-fa": "nginx forward-auth (in front of Portcullis)",
}
for s in SERVERS:
    if s in rss:
        idle = max(rss[s].get("idle", [0]))
        load = max(rss[s].get("load", [0]))
        after = max(rss[s].get("after", [0]))
        print(f"| {names[s]} | {idle / 1024:.1f} MB | {load / 1024:.1f} MB | {after / 1024:.1f} MB |")
