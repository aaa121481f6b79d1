package policy

import "go.yaml.in/yaml/v3"

// The YAML form of a Policy, in the document's own field names. It lives
// beside Parse so that a field the parser learns is one the writer writes.
type (
	yamlPolicy struct {
		Edge     []string               `yaml:"edge,omitempty,flow"`
		Services map[string]yamlService `yaml:"services"`
	}
	yamlService struct {
		Allow     []yamlAllow  `yaml:"allow,omitempty"`
		Sensitive []yamlRoutes `yaml:"sensitive,omitempty"`
	}
	yamlAllow struct {
		Callers []string `yaml:"callers,flow"`
		Methods []string `yaml:"methods,omitempty,flow"`
		Paths   []string `yaml:"paths,omitempty,flow"`
		Actor   string   `yaml:"actor,omitempty"`
	}
	yamlRoutes struct {
		Methods []string `yaml:"methods,omitempty,flow"`
		Paths   []string `yaml:"paths,omitempty,flow"`
	}
)

// Marshal writes p as a policy document that Parse reads back to the same
// policy. It is rebuilt from the parsed form: no comment, anchor or
// ordering of an original document survives.
func (p *Policy) Marshal() ([]byte, error) {
	out := yamlPolicy{Edge: p.Edge, Services: make(map[string]yamlService, len(p.Services))}
	for name, sp := range p.Services {
		var ys yamlService
		for _, r := range sp.Allow {
			ys.Allow = append(ys.Allow, yamlAllow{Callers: r.Callers, Methods: r.Methods, Paths: r.Paths, Actor: string(r.Actor)})
		}
		for _, r := range sp.Sensitive {
			ys.Sensitive = append(ys.Sensitive, yamlRoutes{Methods: r.Methods, Paths: r.Paths})
		}
		out.Services[name] = ys
	}
	return yaml.Marshal(out)
}
