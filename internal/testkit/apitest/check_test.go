package apitest

import (
	"net/http"
	"testing"
)

// recorder counts Check's complaints instead of failing the real test.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.errors++ }

func reply(status int, contentType, body string) Reply {
	return Reply{Status: status, Header: http.Header{"Content-Type": {contentType}}, Body: object([]byte(body)), Raw: []byte(body)}
}

// Every test of the API leans on Check, so a Check that let a wrong answer
// through would weaken them all at once.
func TestCheck(t *testing.T) {
	const js = "application/json; charset=UTF-8"
	cases := []struct {
		name   string
		r      Reply
		status int
		code   string
		ok     bool
	}{
		{"success", reply(200, js, `{"id":1}`), 200, "", true},
		{"wrong status", reply(201, js, `{"id":1}`), 200, "", false},
		{"server error for bad input", reply(500, js, `{"error":{"code":"internal","message":"m"}}`), 400, "", false},
		{"success that is not JSON", reply(200, "text/plain", `ok`), 200, "", false},
		{"success that is a JSON array", reply(200, js, `[1]`), 200, "", false},
		{"success served as text", reply(200, "text/plain", `{"id":1}`), 200, "", false},
		{"success carrying an error", reply(200, js, `{"error":{"code":"x","message":"m"}}`), 200, "", false},
		{"error with the code wanted", reply(409, js, `{"error":{"code":"sold_out","message":"m"}}`), 409, "sold_out", true},
		{"error with any code", reply(409, js, `{"error":{"code":"sold_out","message":"m"}}`), 409, "", true},
		{"error with another code", reply(409, js, `{"error":{"code":"sold_out","message":"m"}}`), 409, "user_limit_reached", false},
		{"error without a message", reply(409, js, `{"error":{"code":"sold_out"}}`), 409, "sold_out", false},
		{"error without a code", reply(409, js, `{"error":{"message":"m"}}`), 409, "", false},
		{"error that is not JSON", reply(503, "text/plain", `down`), 503, "", false},
	}
	for _, c := range cases {
		rec := &recorder{TB: t}
		if got := Check(rec, c.name, c.r, c.status, c.code); got != c.ok || (rec.errors == 0) != c.ok {
			t.Errorf("%s: Check = %v with %d complaints, want %v", c.name, got, rec.errors, c.ok)
		}
	}
}
