package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"
)

// openAPIYAML is the hand-written OpenAPI document of the contract. It is the source of truth
// for /openapi.json and /docs; openapi_test.go keeps it in step with the router.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is openAPIYAML converted to JSON once, when the package is loaded, so that
// serving it costs nothing. A conversion error (a broken embedded file, which the package's
// tests catch first) is kept and answered as a 500 rather than crashing the process.
var openAPIJSON, openAPIErr = yaml.YAMLToJSON(openAPIYAML)

// openAPIDocument serves GET /openapi.json.
func (s *server) openAPIDocument(c *gin.Context) {
	if openAPIErr != nil {
		s.fail(c, openAPIErr)
		return
	}
	c.Header("Content-Length", strconv.Itoa(len(openAPIJSON)))
	c.Data(http.StatusOK, jsonContentType, openAPIJSON)
}
