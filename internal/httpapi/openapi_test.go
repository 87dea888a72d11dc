package httpapi_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// TestOpenAPIServed: GET /openapi.json answers the embedded document, which
// is valid OpenAPI 3.1 and describes every route; the index links to it.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	if link := apitest.GetOK(t, srv.URL+"/")["openapi"]; link != "/openapi.json" {
		t.Fatalf(`index "openapi" = %v, want "/openapi.json"`, link)
	}
	r := apitest.Get(t, srv.URL+"/openapi.json")
	apitest.Expect(t, "GET /openapi.json", r, http.StatusOK, "")
	if !bytes.Equal(r.Raw, httpapi.OpenAPIJSON()) {
		t.Fatalf("GET /openapi.json is not the embedded document")
	}

	doc, err := libopenapi.NewDocument(r.Raw)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if info := doc.GetSpecInfo(); info.SpecType != "openapi" || info.Version != "3.1.0" {
		t.Fatalf("document is %s %s, want openapi 3.1.0", info.SpecType, info.Version)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("build model: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("not valid OpenAPI 3.1: %v", e)
		}
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build model: %v", err)
	}
	// Each route of the index, as the document names it.
	for path, method := range map[string]string{
		"/": "get", "/openapi.json": "get", "/healthz": "get", "/health": "get", "/readyz": "get",
		"/checkout": "post", "/purchase": "post", "/sales/current": "get", "/sales/current/items": "get",
		"/sales/current/events": "get", "/sales/{sale_id}": "get", "/users/{user_id}/purchases": "get",
		"/items/{sale_id}/{item_id}/image.svg": "get",
	} {
		item := model.Model.Paths.PathItems.GetOrZero(path)
		if item == nil || item.GetOperations().GetOrZero(method) == nil {
			t.Errorf("document lacks %s %s", method, path)
		}
	}
}
