package spectest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// TestServerAnswersOutsideTheRoutes sends the real server what the other
// suites do not: paths and methods the document lacks, HEAD where only POST
// is, a body on a GET. apitest.Start's wrapper fails the test on any answer
// the document does not describe; the statuses are checked here too.
func TestServerAnswersOutsideTheRoutes(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	big := strings.Repeat("x", 17<<10)
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodGet, "/healthz/", "", http.StatusNotFound},
		{http.MethodGet, "/users/u/purchases/", "", http.StatusNotFound},
		{http.MethodGet, "//healthz", "", http.StatusNotFound},
		{http.MethodDelete, "/checkout", "", http.StatusMethodNotAllowed},
		{http.MethodPut, "/no/such/path", "", http.StatusNotFound},
		{http.MethodHead, "/checkout", "", http.StatusMethodNotAllowed},
		{http.MethodHead, "/no/such/path", "", http.StatusNotFound},
		{http.MethodGet, "/healthz", big, http.StatusRequestEntityTooLarge},
		{http.MethodGet, "/no/such/path", big, http.StatusRequestEntityTooLarge},
		{http.MethodOptions, "/checkout", "", http.StatusNoContent},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r, err := apitest.Send(apitest.Client, c.method, srv.URL+c.path, "", body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, r.Status, c.status)
		}
	}
}
