package httpapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/goccy/go-yaml"
	"github.com/labstack/echo/v4"
)

// openapiYAML is the API's contract, written in YAML for its comments and
// served as JSON, which is what OpenAPI tools fetch.
//
//go:embed openapi.yaml
var openapiYAML []byte

// openapiJSON is converted once: the document is part of the binary, so a
// broken one fails every start (and every test) rather than one request.
var openapiJSON = mustJSON(openapiYAML)

func mustJSON(doc []byte) []byte {
	// goccy/go-yaml keeps the keys' order, so the JSON reads like the YAML.
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		panic(fmt.Sprintf("openapi.yaml as JSON: %v", err))
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// OpenAPIJSON is the document served at GET /openapi.json.
func OpenAPIJSON() []byte { return bytes.Clone(openapiJSON) }

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapiJSON)
}
