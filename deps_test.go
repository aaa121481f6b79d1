package rampart_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// A service that imports the SDK or one guard compiles everything these
// packages import: that graph is part of the API. The test lists it with
// the go command, as Tailscale's deptest does, for each platform a service
// builds for.

// lightPackages are what a service author imports to protect a service.
var lightPackages = []string{".", "./sqlguard", "./execguard", "./ssrfguard", "./fsguard", "./actor", "./identity"}

// heavyDeps are import-path prefixes none of lightPackages may reach, each
// with the reason.
var heavyDeps = []struct{ prefix, why string }{
	{"google.golang.org/grpc", "gRPC: only identity/workload (the SPIFFE Workload API) speaks it"},
	{"google.golang.org/protobuf", "protocol buffers come with gRPC"},
	{"google.golang.org/genproto", "protocol buffers come with gRPC"},
	{"github.com/golang/protobuf", "protocol buffers come with gRPC"},
	{"github.com/spiffe/go-spiffe/v2/workloadapi", "the Workload API client: identity/workload only"},
	{"github.com/spiffe/go-spiffe/v2/proto", "the Workload API client: identity/workload only"},
	{"golang.org/x/net", "the standard library has its own HTTP/2; x/net came with gRPC"},
	{"go.opentelemetry.io/otel/propagation", "W3C trace context is read by the SDK itself (tracecontext.go)"},
	{"go.opentelemetry.io/otel/sdk", "an application chooses its own OpenTelemetry SDK"},
	{"go.opentelemetry.io/otel/exporters", "an application chooses its own OpenTelemetry exporters"},
	// go.yaml.in/yaml/v3 is allowed: the control plane serves each agent
	// its slice of the policy as YAML text. No other YAML library is.
	{"gopkg.in/yaml", "YAML: the agent parses the policy with go.yaml.in/yaml/v3 only"},
	{"go.yaml.in/yaml/v2", "YAML: the agent parses the policy with go.yaml.in/yaml/v3 only"},
	{"go.yaml.in/yaml/v4", "YAML: the agent parses the policy with go.yaml.in/yaml/v3 only"},
	{"github.com/goccy/go-yaml", "YAML: the agent parses the policy with go.yaml.in/yaml/v3 only"},
	{"sigs.k8s.io/yaml", "YAML: the agent parses the policy with go.yaml.in/yaml/v3 only"},
	{"github.com/corazawaf/", "the WAF belongs to the gateway"},
	{"github.com/jackc/", "a database driver is the service's choice, not the SDK's"},
	{"github.com/go-sql-driver/mysql", "a database driver is the service's choice, not the SDK's"},
	{"github.com/lib/pq", "a database driver is the service's choice, not the SDK's"},
	{"modernc.org/", "a database driver is the service's choice, not the SDK's"},
	{"github.com/mattn/go-sqlite3", "a database driver is the service's choice, not the SDK's"},
	{"github.com/rampartsec/rampart/internal/control/", "the control plane's code never runs in a service"},
	{"github.com/rampartsec/rampart/internal/store", "the control plane's storage never runs in a service"},
	{"github.com/rampartsec/rampart/internal/gateway", "the gateway's code never runs in a service"},
}

// maxNonStandard bounds the non-standard packages each of lightPackages
// links, the package itself and Rampart's own included. A guard links 29
// to 31 today (153 while identity held the Workload API source); the bound
// leaves room for a few more before a reviewer has to look.
const maxNonStandard = 40

func TestImportGraphStaysLight(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the import graph with")
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, pkg := range lightPackages {
			t.Run(goos+"/"+pkg, func(t *testing.T) {
				self, imports := listImports(t, goTool, goos, pkg)
				for _, h := range heavyDeps {
					// One error per heavy dependency, naming the shortest
					// chain that reaches it: that is where to cut.
					var chain []string
					n := 0
					for p := range imports {
						if strings.HasPrefix(p, h.prefix) {
							n++
							if c := importPath(imports, self, p); chain == nil || len(c) < len(chain) || (len(c) == len(chain) && p < chain[len(chain)-1]) {
								chain = c
							}
						}
					}
					if n > 0 {
						t.Errorf("%s links %d packages of %s (%s), through %s",
							pkg, n, h.prefix, h.why, strings.Join(chain, " → "))
					}
				}
				if len(imports) > maxNonStandard {
					names := make([]string, 0, len(imports))
					for p := range imports {
						names = append(names, p)
					}
					slices.Sort(names)
					t.Errorf("%s links %d non-standard packages, more than %d: each new dependency needs a reason a reviewer accepts (then raise the bound):\n\t%s",
						pkg, len(imports), maxNonStandard, strings.Join(names, "\n\t"))
				}
			})
		}
	}
}

// listImports returns pkg's import path and the non-standard packages it
// links when built for goos, with the non-standard packages each imports.
func listImports(t *testing.T, goTool, goos, pkg string) (string, map[string][]string) {
	t.Helper()
	cmd := exec.Command(goTool, "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{end}}`, pkg)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	imports := map[string][]string{}
	self := ""
	for line := range strings.Lines(string(out)) {
		if fields := strings.Fields(line); len(fields) > 0 {
			imports[fields[0]] = fields[1:]
			self = fields[0] // go list -deps names pkg last, after what it imports
		}
	}
	// Keep only the edges between non-standard packages.
	for p, deps := range imports {
		imports[p] = slices.DeleteFunc(deps, func(d string) bool { _, ok := imports[d]; return !ok })
	}
	return self, imports
}

// importPath returns a shortest chain of imports from one package to
// another, for an error message that says where to cut.
func importPath(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, d := range imports[p] {
			if _, seen := prev[d]; !seen {
				prev[d] = p
				queue = append(queue, d)
			}
		}
	}
	return []string{from, "…", to}
}
