# Portcullis container image.
#
#   docker build -t portcullis:0.1.0 .
#   docker run --read-only -p 8080:8080 -v portcullis-data:/var/lib/portcullis \
#     -e OIDC_DISCOVERY_URL=… -e OIDC_CLIENT_ID=… -e OIDC_CLIENT_SECRET=… \
#     -e JWT_SIGNING_SECRET=… -e OIDC_REDIRECT_URL=https://auth.example.com/api/callback \
#     portcullis:0.1.0
#
# The root filesystem can be read-only: the only state is the SQLite database in the volume
# /var/lib/portcullis (or none at all with PostgreSQL).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock, as tested.
RUN cargo build --release --locked -p portcullis

# Debian slim rather than distroless: the HEALTHCHECK needs a shell (bash's /dev/tcp). The
# binary needs only glibc and libgcc (TLS is rustls, SQLite is bundled), plus the system's CA
# certificates: it verifies the IdP's TLS certificate against them (ca-certificates).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 portcullis \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin portcullis \
 && install -d -o 65532 -g 65532 -m 0700 /var/lib/portcullis
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY deploy/docker/healthcheck.sh /usr/local/bin/portcullis-healthcheck
ENV PORTCULLIS_LISTEN=0.0.0.0:8080 \
    PORTCULLIS_DATABASE_URL=sqlite:///var/lib/portcullis/portcullis.db
VOLUME /var/lib/portcullis
WORKDIR /var/lib/portcullis
EXPOSE 8080
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/portcullis-healthcheck"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve"]
