package httpapi_test

import (
	"bytes"
	"net/http"
	"slices"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"

	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/sale"
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
	// The events' admin routes (admin_events.go).
	for _, route := range [][2]string{
		{"/admin/events", "get"}, {"/admin/events/{event_id}", "get"}, {"/admin/events/{event_id}/redeliver", "post"},
		{"/admin/events/redeliver", "post"}, {"/admin/webhooks/failed", "get"},
	} {
		item := model.Model.Paths.PathItems.GetOrZero(route[0])
		if item == nil || item.GetOperations().GetOrZero(route[1]) == nil {
			t.Errorf("document lacks %s %s", route[1], route[0])
		}
	}
	checkWebhooks(t, model.Model.Webhooks, model.Model.Components.Schemas.GetOrZero("EventType"))
}

// checkWebhooks: the document's webhooks are the event types, each a POST
// of an Event of its type, and the Event's type enum lists them all.
func checkWebhooks(t *testing.T, hooks *orderedmap.Map[string, *v3.PathItem], eventType *base.SchemaProxy) {
	t.Helper()
	var want []string
	for _, typ := range sale.EventTypes() {
		want = append(want, string(typ))
	}
	var enum []string
	if eventType != nil {
		for _, n := range eventType.Schema().Enum {
			enum = append(enum, n.Value)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(enum)), slices.Sorted(slices.Values(want))) {
		t.Errorf("components.schemas.EventType enum %v, want the event types %v", enum, want)
	}
	var names []string
	for name, item := range hooks.FromOldest() {
		names = append(names, name)
		post := item.Post
		if post == nil || post.RequestBody == nil {
			t.Errorf("webhook %s: no POST with a body", name)
			continue
		}
		media := post.RequestBody.Content.GetOrZero("application/json")
		if media == nil || media.Schema == nil {
			t.Errorf("webhook %s: no application/json body", name)
			continue
		}
		var consts []string
		for _, part := range media.Schema.Schema().AllOf {
			if p := part.Schema().Properties; p != nil {
				if typ := p.GetOrZero("type"); typ != nil && typ.Schema().Const != nil {
					consts = append(consts, typ.Schema().Const.Value)
				}
			}
		}
		if !slices.Equal(consts, []string{name}) {
			t.Errorf("webhook %s: body's type const %v, want [%s]", name, consts, name)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(want))) {
		t.Errorf("webhooks %v, want one per event type %v", names, want)
	}
}
