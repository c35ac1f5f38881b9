package httpapi

import (
	_ "embed"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// openAPIYAML is the hand-written OpenAPI document of the contract. It is the source of truth
// for /openapi.json and /docs; openapi_test.go keeps it in step with the router.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is openAPIYAML with its HEAD operations (withHeadOperations), converted to JSON
// once, when the package is loaded, so that serving it costs nothing. A conversion error (a
// broken embedded file, which the package's tests catch first) is kept and answered as a 500
// rather than crashing the process.
var openAPIJSON, openAPIErr = func() ([]byte, error) {
	withHead, err := withHeadOperations(openAPIYAML)
	if err != nil {
		return nil, err
	}
	return yaml.YAMLToJSON(withHead)
}()

// withHeadOperations adds to every path of the document that has a GET operation the HEAD
// operation the router serves beside it, right after the GET: the same parameters, security
// and tags, operationId + "Head", and each response as the GET's (a referenced one inlined)
// without its content, since a HEAD answer has the GET's status and headers and no body.
// Written once by hand they would be 30 copies to keep in step with their GETs.
func withHeadOperations(doc []byte) ([]byte, error) {
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if root.Kind != yamlv3.DocumentNode || len(root.Content) != 1 {
		return nil, fmt.Errorf("openapi.yaml: not one YAML document")
	}
	top := root.Content[0]
	responses := mappingValue(mappingValue(top, "components"), "responses")
	paths := mappingValue(top, "paths")
	if paths == nil {
		return nil, fmt.Errorf("openapi.yaml: no paths")
	}
	for i := 1; i < len(paths.Content); i += 2 {
		item := paths.Content[i]
		get := mappingValue(item, "get")
		if get == nil || mappingValue(item, "head") != nil {
			continue
		}
		head, err := headOperation(get, responses)
		if err != nil {
			return nil, fmt.Errorf("openapi.yaml: HEAD %s: %w", paths.Content[i-1].Value, err)
		}
		at := indexOfKey(item, "get") + 2
		item.Content = append(item.Content[:at], append([]*yamlv3.Node{scalar("head"), head}, item.Content[at:]...)...)
	}
	return yamlv3.Marshal(&root)
}

// headOperation is the HEAD twin of the GET operation get; refs are the document's
// components.responses, to inline the responses get refers to.
func headOperation(get, refs *yamlv3.Node) (*yamlv3.Node, error) {
	head := &yamlv3.Node{Kind: yamlv3.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(get.Content); i += 2 {
		key, value := get.Content[i].Value, get.Content[i+1]
		switch key {
		case "operationId":
			head.Content = append(head.Content, scalar(key), scalar(value.Value+"Head"))
		case "summary":
			head.Content = append(head.Content, scalar(key), scalar("Headers only: "+value.Value))
		case "description":
			head.Content = append(head.Content, scalar(key), scalar("The GET operation's status and headers, without a body."))
		case "responses":
			out := &yamlv3.Node{Kind: yamlv3.MappingNode, Tag: "!!map"}
			for j := 0; j+1 < len(value.Content); j += 2 {
				resp := value.Content[j+1]
				if ref := mappingValue(resp, "$ref"); ref != nil {
					name, ok := strings.CutPrefix(ref.Value, "#/components/responses/")
					if resp = mappingValue(refs, name); !ok || resp == nil {
						return nil, fmt.Errorf("response %s refers to %q, which is not in components.responses", value.Content[j].Value, ref.Value)
					}
				}
				out.Content = append(out.Content, value.Content[j], withoutKey(resp, "content"))
			}
			head.Content = append(head.Content, scalar(key), out)
		default:
			head.Content = append(head.Content, get.Content[i], value)
		}
	}
	return head, nil
}

// mappingValue is the value of key in the mapping node m, nil when m is not a mapping or has
// no such key.
func mappingValue(m *yamlv3.Node, key string) *yamlv3.Node {
	if i := indexOfKey(m, key); i >= 0 {
		return m.Content[i+1]
	}
	return nil
}

// indexOfKey is the index in m.Content of key's key node, -1 when absent.
func indexOfKey(m *yamlv3.Node, key string) int {
	if m == nil || m.Kind != yamlv3.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// withoutKey is a shallow copy of the mapping m without key (m itself is shared by the GET).
func withoutKey(m *yamlv3.Node, key string) *yamlv3.Node {
	out := *m
	out.Anchor = ""
	out.Content = nil
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			out.Content = append(out.Content, m.Content[i], m.Content[i+1])
		}
	}
	return &out
}

func scalar(v string) *yamlv3.Node {
	return &yamlv3.Node{Kind: yamlv3.ScalarNode, Tag: "!!str", Value: v}
}

// openAPIDocument serves GET /openapi.json.
func (s *server) openAPIDocument(c *gin.Context) {
	if openAPIErr != nil {
		s.fail(c, openAPIErr)
		return
	}
	c.Header("Content-Length", strconv.Itoa(len(openAPIJSON)))
	c.Data(http.StatusOK, jsonContentType, openAPIJSON)
}
