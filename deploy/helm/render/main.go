// Command render renders a Helm chart the way `helm template` does, for the subset of Helm that
// the Portcullis chart uses, so the chart can be tested where Helm itself cannot be installed.
//
// It uses Go's text/template and Masterminds' sprig, the same template engine and function
// library as Helm, and follows Helm's rules for what the tests depend on:
//
//   - .Values: the chart's values.yaml, then every --values file in order, merged deeply (maps
//     merge key by key, anything else is replaced by the later file, null removes a key);
//   - the merged values are checked against values.schema.json before anything is rendered
//     (JSON Schema, delegated to Python's jsonschema, which kubernetes-validate installs);
//   - .Release (Name, Namespace, Service, IsInstall), .Chart (from Chart.yaml), .Template;
//   - include, tpl, required, fail, toYaml, fromYaml, toJson, fromJson, lookup (always empty,
//     as in `helm template`), and sprig's functions without env/expandenv (Helm removes them);
//   - missing keys render as empty, templates whose name starts with "_" are not emitted, and
//     NOTES.txt is rendered (so its errors show) but not emitted.
//
// Build offline with Debian's packages, in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render ./deploy/helm/render
//
// Usage: render --chart DIR [--values FILE]... [--name NAME] [--namespace NS] [--output yaml|json]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type valuesFiles []string

func (v *valuesFiles) String() string     { return strings.Join(*v, ",") }
func (v *valuesFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	var files valuesFiles
	chartDir := flag.String("chart", "", "chart directory")
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	output := flag.String("output", "yaml", "yaml (multi-document, like helm template) or json (an array of the objects)")
	flag.Var(&files, "values", "values file (repeatable; later files win)")
	flag.Parse()
	if *chartDir == "" {
		fmt.Fprintln(os.Stderr, "render: --chart is required")
		os.Exit(2)
	}
	out, err := render(*chartDir, files, *name, *namespace, *output)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func render(chartDir string, files []string, releaseName, namespace, output string) ([]byte, error) {
	chartMeta, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	chartName, _ := chartMeta["name"].(string)
	if chartName == "" {
		return nil, errors.New("Chart.yaml has no name")
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		v, err := readYAMLMap(f)
		if err != nil {
			return nil, err
		}
		mergeValues(values, v)
	}
	if err := validateSchema(chartDir, chartName, values); err != nil {
		return nil, err
	}

	// Helm exposes Chart.yaml's fields with capitalised names (its Metadata struct).
	chart := map[string]interface{}{}
	for k, v := range chartMeta {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	release := map[string]interface{}{
		"Name": releaseName, "Namespace": namespace, "Service": "Helm",
		"IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}

	// Every template of the chart goes into one set, named as Helm names them, so that
	// include and define work across files.
	tmplDir := filepath.Join(chartDir, "templates")
	entries, err := os.ReadDir(tmplDir)
	if err != nil {
		return nil, err
	}
	root := template.New("root").Option("missingkey=zero")
	var names []string
	funcs := funcMap(root)
	root.Funcs(funcs)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := os.ReadFile(filepath.Join(tmplDir, e.Name()))
		if err != nil {
			return nil, err
		}
		n := path.Join(chartName, "templates", e.Name())
		if _, err := root.New(n).Parse(string(body)); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)

	var docs []string
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		data := map[string]interface{}{
			"Values":       values,
			"Release":      release,
			"Chart":        chart,
			"Capabilities": map[string]interface{}{"KubeVersion": map[string]interface{}{"Version": "v1.30.0", "Major": "1", "Minor": "30"}},
			"Template":     map[string]interface{}{"Name": n, "BasePath": path.Join(chartName, "templates")},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, data); err != nil {
			return nil, cleanErr(err)
		}
		if base == "NOTES.txt" {
			continue
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		docs = append(docs, fmt.Sprintf("---\n# Source: %s\n%s\n", n, strings.TrimRight(text, "\n")))
	}

	if output == "json" {
		var objects []interface{}
		for _, d := range docs {
			dec := yaml.NewDecoder(strings.NewReader(d))
			for {
				var o interface{}
				if err := dec.Decode(&o); err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					return nil, fmt.Errorf("rendered YAML does not parse: %v\n%s", err, d)
				}
				if o != nil {
					objects = append(objects, o)
				}
			}
		}
		return json.MarshalIndent(objects, "", "  ")
	}
	return []byte(strings.Join(docs, "")), nil
}

// funcMap is sprig's function map as Helm uses it, plus Helm's own functions.
func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm removes these: a chart must not read the environment of whoever runs helm.
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = func(v interface{}) string {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	// `helm template` has no cluster to look objects up in.
	f["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{}
	}
	return f
}

// cleanErr shortens text/template's error chain to Helm's "execution error at (…): message".
func cleanErr(err error) error {
	var ee template.ExecError
	if errors.As(err, &ee) {
		msg := ee.Err.Error()
		// Nested includes repeat "template: …: error calling include: "; keep the innermost.
		if i := strings.LastIndex(msg, "error calling "); i >= 0 {
			rest := msg[i+len("error calling "):]
			if j := strings.Index(rest, ": "); j >= 0 {
				msg = rest[j+2:]
			}
		}
		return fmt.Errorf("execution error at (%s): %s", ee.Name, msg)
	}
	return err
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return m, nil
}

// mergeValues merges src into dst as Helm merges values files: maps key by key, other values
// replaced, an explicit null deleting the key.
func mergeValues(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			mergeValues(dm, sm)
			continue
		}
		dst[k] = v
	}
}

// The validator Helm would run, in Python: jsonschema picks the draft the schema names.
const schemaCheck = `
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit("render: Python's jsonschema is needed to check values.schema.json: pip install kubernetes-validate (it brings jsonschema), or pip install jsonschema")
schema = json.load(open(sys.argv[1]))
values = json.load(sys.stdin)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path])
for e in errors:
    print("- at '/%s': %s" % ("/".join(str(p) for p in e.absolute_path), e.message))
sys.exit(1 if errors else 0)
`

func validateSchema(chartDir, chartName string, values map[string]interface{}) error {
	schema := filepath.Join(chartDir, "values.schema.json")
	if _, err := os.Stat(schema); err != nil {
		return nil
	}
	in, err := json.Marshal(values)
	if err != nil {
		return err
	}
	cmd := exec.Command("python3", "-c", schemaCheck, schema)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 && stdout.Len() > 0 {
			return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s",
				chartName, strings.TrimRight(stdout.String(), "\n"))
		}
		return fmt.Errorf("checking values.schema.json: %v: %s%s", err, stdout.String(), stderr.String())
	}
	return nil
}
