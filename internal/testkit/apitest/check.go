package apitest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Check reports, without stopping the test, whether r answers status in the
// API's one shape: a JSON object served as application/json which, from 400
// up, is {"error":{"code":...,"message":...}} with both set and, below 400,
// has no "error" at all. code is the error code wanted; "" accepts any.
func Check(t testing.TB, what string, r Reply, status int, code string) bool {
	t.Helper()
	if r.Status != status {
		var why string
		if r.Status >= 500 && status < 500 {
			why = " (a client's mistake must never be a server error)"
		}
		t.Errorf("%s: status %d, want %d%s; body %s", what, r.Status, status, why, r.Raw)
		return false
	}
	ok := true
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		ok = false
	}
	if r.Body == nil {
		t.Errorf("%s: status %d: body %q is not a JSON object", what, r.Status, r.Raw)
		return false
	}
	if status < http.StatusBadRequest {
		if _, has := r.Body["error"]; has {
			t.Errorf("%s: status %d with an error: %s", what, r.Status, r.Raw)
			return false
		}
		return ok
	}
	e, _ := r.Body["error"].(map[string]any)
	got := ErrorCode(r.Body)
	if msg, _ := e["message"].(string); got == "" || msg == "" {
		t.Errorf("%s: body %s: want {\"error\":{\"code\":...,\"message\":...}} with both set", what, r.Raw)
		ok = false
	}
	if code != "" && got != code {
		t.Errorf("%s: error.code %q, want %q; body %s", what, got, code, r.Raw)
		ok = false
	}
	return ok
}

// Expect is Check for answers the rest of the test builds on.
func Expect(t testing.TB, what string, r Reply, status int, code string) {
	t.Helper()
	if !Check(t, what, r, status, code) {
		t.FailNow()
	}
}

// ErrorCode is the code of an error answer, "" for any other.
func ErrorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// Int reads a JSON number field, failing if it is not one.
func Int(t testing.TB, m map[string]any, key string) int64 {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok {
		t.Fatalf("field %q = %#v, want a number (in %v)", key, m[key], m)
	}
	return int64(f)
}

// Time reads an RFC 3339 time field, failing if it is not one.
func Time(t testing.TB, m map[string]any, key string) time.Time {
	t.Helper()
	s, _ := m[key].(string)
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("field %q = %#v, want an RFC 3339 time (in %v): %v", key, m[key], m, err)
	}
	return v
}
