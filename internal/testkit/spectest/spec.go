// Package spectest holds the HTTP API to its OpenAPI document while tests
// drive it: every request that reaches the server and every answer it writes
// is checked against the document the server itself serves, so an
// undocumented status, field, header or error code fails the test that
// caused it.
package spectest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/responses"
	"github.com/pb33f/libopenapi-validator/router"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/flashsale/flashsale/internal/httpapi"
)

// Spec is the API's document, ready to check exchanges against. It is safe
// for concurrent use.
type Spec struct {
	model *v3.Document
	// full checks requests and whole responses; headersOnly checks a
	// response's status and headers, for answers without a body to check
	// (HEAD, event streams).
	full, headersOnly validator.Validator
	router            router.Router
	schemas           schema_validation.SchemaValidator
	// mu makes checks take turns: the validator renders the document's
	// schemas lazily, writing to the shared model (a data race under
	// -race when parallel tests check at once).
	mu sync.Mutex
}

// Load returns the document served at /openapi.json, parsed and validated
// against the OpenAPI 3.1 schema once per test binary.
func Load() (*Spec, error) { return load() }

var load = sync.OnceValues(func() (*Spec, error) { return Parse(httpapi.OpenAPIJSON()) })

// Parse builds a Spec from an OpenAPI 3.1 document.
func Parse(doc []byte) (*Spec, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse openapi document: %w", err)
	}
	if v := d.GetVersion(); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapi document is version %q, want 3.1.x", v)
	}
	// Formats too: a date-time that is not RFC 3339 is a broken answer.
	full, errs := validator.NewValidator(d, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build openapi model: %w", errors.Join(errs...))
	}
	if ok, errs := full.ValidateDocument(); !ok {
		return nil, fmt.Errorf("openapi document breaks the OpenAPI 3.1 schema: %s", describe(errs))
	}
	m, err := d.BuildV3Model() // the same model, built once and kept by the document
	if err != nil {
		return nil, fmt.Errorf("build openapi model: %w", err)
	}
	return &Spec{
		model:       &m.Model,
		full:        full,
		headersOnly: validator.NewValidatorFromV3Model(&m.Model, config.WithFormatAssertions(), config.WithoutResponseBodyValidation()),
		router:      router.NewRouter(&m.Model, router.WithPathOnlyMatching()),
		schemas:     schema_validation.NewSchemaValidator(config.WithFormatAssertions()),
	}, nil
}

// Exchange is one request and the answer the server wrote to it.
type Exchange struct {
	Request     *http.Request // its Body is not read: RequestBody holds it
	RequestBody []byte
	// RequestBodyPartial is set when only the start of the body was kept,
	// so the body cannot be checked.
	RequestBodyPartial bool
	Status             int
	Header             http.Header
	Body               []byte
	// BodyPartial is set when the body was streamed or too large to keep:
	// then only the status and headers are checked.
	BodyPartial bool
}

// unroutedResponses are the answers the document allows, by name in
// components.responses, to a path or method it does not describe: besides
// the 404 or 405 itself, what every route can answer (see info.description).
var unroutedResponses = map[int]string{
	http.StatusRequestEntityTooLarge:       "RequestTooLarge",
	http.StatusRequestHeaderFieldsTooLarge: "HeadersTooLarge",
	http.StatusTooManyRequests:             "RateLimited",
	http.StatusInternalServerError:         "Internal",
}

// Check returns what in x disagrees with the document, one line per problem.
// A request the document calls invalid must be answered with a 4xx; every
// answer, whatever the request, must be one the document describes.
func (s *Spec) Check(x Exchange) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := x.Request
	if req.Method == http.MethodOptions {
		// Answered by the HTTP layer (Allow, CORS preflights), outside the
		// document by its own statement; only a server error is wrong here.
		if x.Status >= 500 {
			return []string{fmt.Sprintf("OPTIONS answered %d", x.Status)}
		}
		return nil
	}
	// HEAD is GET without a body, as the document says. An event stream's
	// body is not kept, but the validator checks its media type and skips
	// its body by itself.
	bodyless := req.Method == http.MethodHead || x.BodyPartial && !isEventStream(x.Header)
	if req.Method == http.MethodHead {
		req = req.Clone(req.Context())
		req.Method = http.MethodGet
	}
	route, err := s.router.FindRoute(req)
	if route != nil && !sameSegments(route.Path, req.URL.EscapedPath()) {
		err = router.ErrPathNotFound
	}
	switch {
	case errors.Is(err, router.ErrPathNotFound):
		return s.checkUnrouted(req, x, bodyless, http.StatusNotFound, "NotFound")
	case errors.Is(err, router.ErrMethodNotAllowed):
		return s.checkUnrouted(req, x, bodyless, http.StatusMethodNotAllowed, "MethodNotAllowed")
	case err != nil:
		return []string{"route: " + err.Error()}
	}

	var problems []string
	if !x.RequestBodyPartial {
		if ok, errs := s.full.ValidateHttpRequestSync(requestToValidate(req, x.RequestBody, route)); !ok &&
			(x.Status < 400 || x.Status >= 500) {
			problems = append(problems, fmt.Sprintf("the document calls the request invalid, yet it was answered %d, not 4xx: %s",
				x.Status, describe(errs)))
		}
	}
	v := s.full
	if bodyless {
		v = s.headersOnly
	}
	if ok, errs := v.ValidateHttpResponse(req, x.response(req)); !ok {
		problems = append(problems, "response: "+describe(errs))
	}
	return problems
}

// CheckWebhook returns what in a webhook delivery, as its receiver got it,
// disagrees with the document's webhooks: the one its Flashsale-Event-Type
// names must exist, and the delivery must have its header parameters and a
// body its schema accepts. The answer is the receiver's, not checked.
func (s *Spec) CheckWebhook(h http.Header, body []byte) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := h.Get("Flashsale-Event-Type")
	var item *v3.PathItem
	if s.model.Webhooks != nil {
		item = s.model.Webhooks.GetOrZero(name)
	}
	if item == nil || item.Post == nil {
		return []string{fmt.Sprintf("the document has no webhook %q (Flashsale-Event-Type)", name)}
	}
	op := item.Post
	var problems []string
	for _, p := range slices.Concat(item.Parameters, op.Parameters) {
		if p.In != "header" || p.Schema == nil {
			continue
		}
		v := h.Get(p.Name)
		if v == "" {
			if p.Required != nil && *p.Required {
				problems = append(problems, "header "+p.Name+" is missing")
			}
			continue
		}
		schema := p.Schema.Schema()
		if ok, errs := s.schemas.ValidateSchemaBytesWithVersion(schema, headerJSON(schema, v), 3.1); !ok {
			problems = append(problems, fmt.Sprintf("header %s %q: %s", p.Name, v, describe(errs)))
		}
	}
	ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	var media *v3.MediaType
	if op.RequestBody != nil {
		media = op.RequestBody.Content.GetOrZero(ct)
	}
	if media == nil || media.Schema == nil {
		return append(problems, fmt.Sprintf("webhook %s has no body of Content-Type %q", name, h.Get("Content-Type")))
	}
	if ok, errs := s.schemas.ValidateSchemaBytesWithVersion(media.Schema.Schema(), body, 3.1); !ok {
		problems = append(problems, "body: "+describe(errs))
	}
	return problems
}

// headerJSON is a header's value as its schema reads it: a number where the
// schema wants one and the value is one, a string otherwise.
func headerJSON(schema *base.Schema, v string) []byte {
	if slices.Contains(schema.Type, "integer") || slices.Contains(schema.Type, "number") {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return []byte(v)
		}
	}
	raw, _ := json.Marshal(v) // a string always encodes
	return raw
}

// checkUnrouted checks the answer to a path or method the document does not
// describe against the component response the document names for it.
func (s *Spec) checkUnrouted(req *http.Request, x Exchange, bodyless bool, status int, name string) []string {
	if x.Status != status {
		other := unroutedResponses[x.Status]
		if other == "" {
			return []string{fmt.Sprintf("the document has no such path or method, which answers %d (components.responses.%s) "+
				"or one of %v, not %d", status, name, slices.Sorted(maps.Keys(unroutedResponses)), x.Status)}
		}
		name = other
	}
	want := s.model.Components.Responses.GetOrZero(name)
	if want == nil {
		return []string{"the document lacks components.responses." + name}
	}
	var problems []string
	code := strconv.Itoa(x.Status)
	if want.Headers != nil {
		if ok, errs := responses.ValidateResponseHeaders(req, x.response(req), want.Headers, req.URL.Path, code); !ok {
			problems = append(problems, "headers of "+name+": "+describe(errs))
		}
	}
	if bodyless {
		return problems
	}
	ct, _, _ := mime.ParseMediaType(x.Header.Get("Content-Type"))
	media := want.Content.GetOrZero(ct)
	if media == nil || media.Schema == nil {
		return append(problems, fmt.Sprintf("%s has no schema for Content-Type %q", name, x.Header.Get("Content-Type")))
	}
	if ok, errs := s.schemas.ValidateSchemaBytesWithVersion(media.Schema.Schema(), x.Body, 3.1); !ok {
		problems = append(problems, "body of "+name+": "+describe(errs))
	}
	return problems
}

// requestToValidate is req as the document sees it: with its body, without
// a Content-Type when there is no body (the server reads an empty body as
// none), and without the empty values of parameters that declare
// allowEmptyValue, which the validator does not honour itself.
func requestToValidate(req *http.Request, body []byte, route *router.Route) *http.Request {
	r := req.Clone(req.Context())
	r.Body = readCloser{bytes.NewReader(body)}
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Header.Del("Content-Type")
	}
	q := r.URL.Query()
	changed := false
	for _, params := range [][]*v3.Parameter{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range params {
			if p.In != "query" || !p.AllowEmptyValue {
				continue
			}
			if vs, ok := q[p.Name]; ok {
				kept := vs[:0]
				for _, v := range vs {
					if v != "" {
						kept = append(kept, v)
					}
				}
				if len(kept) == 0 {
					delete(q, p.Name)
				} else {
					q[p.Name] = kept
				}
				changed = changed || len(kept) != len(vs)
			}
		}
	}
	if changed {
		u := *r.URL
		u.RawQuery = q.Encode()
		r.URL = &u
	}
	return r
}

// sameSegments reports whether path has the segments of template exactly:
// the validator's router forgives a trailing or doubled slash, the server's
// does not.
func sameSegments(template, path string) bool {
	want, got := strings.Split(template, "/"), strings.Split(path, "/")
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		isParam := strings.HasPrefix(w, "{") && strings.HasSuffix(w, "}")
		if isParam && got[i] == "" || !isParam && got[i] != w {
			return false
		}
	}
	return true
}

func (x Exchange) response(req *http.Request) *http.Response {
	return &http.Response{
		StatusCode: x.Status, Header: x.Header, Request: req,
		Body: readCloser{bytes.NewReader(x.Body)}, ContentLength: int64(len(x.Body)),
	}
}

func isEventStream(h http.Header) bool {
	ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return ct == "text/event-stream"
}

// describe flattens the validator's errors into one line each, keeping what
// says where and why.
func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Message)
		if e.Reason != "" {
			b.WriteString(": " + e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			where := f.FieldPath
			if where == "" {
				where = f.KeywordLocation
			}
			fmt.Fprintf(&b, " [%s: %s]", where, f.Reason)
		}
	}
	return b.String()
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
