package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

// The user id and Idempotency-Key limits are stated in Go (sale), in the
// schema's CHECKs and in the OpenAPI document; a change to one that misses
// another would refuse at one layer what another accepts.
func TestLimitsAgreeAcrossGoSchemaAndOpenAPI(t *testing.T) {
	t.Parallel()
	_, pool := pgtest.NewPool(t)
	// Every table (and partition) that carries the constraint.
	checks := func(name string) []string {
		t.Helper()
		rows, err := pool.Query(context.Background(),
			`SELECT conrelid::regclass::text || ': ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1 ORDER BY 1`, name)
		if err != nil {
			t.Fatalf("read CHECK %s: %v", name, err)
		}
		defer rows.Close()
		var defs []string
		for rows.Next() {
			var def string
			if err := rows.Scan(&def); err != nil {
				t.Fatalf("read CHECK %s: %v", name, err)
			}
			defs = append(defs, def)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read CHECK %s: %v", name, err)
		}
		if len(defs) == 0 {
			t.Fatalf("no CHECK %s in the migrated schema", name)
		}
		return defs
	}
	var doc map[string]any
	if err := json.Unmarshal(httpapi.OpenAPIJSON(), &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}

	limits := []struct {
		what       string
		goMax      int
		constraint string
		// bounds finds the CHECK's lower and upper bound in its definition.
		bounds  *regexp.Regexp
		schema  []string // path to the schema in the OpenAPI document
		explain string   // how its description states the range
	}{
		{
			what: "user id", goMax: sale.MaxUserIDBytes, constraint: "checkout_attempts_user_id_length",
			bounds:  regexp.MustCompile(`octet_length\(user_id\) >= (\d+)\) AND \(octet_length\(user_id\) <= (\d+)`),
			schema:  []string{"components", "schemas", "UserID"},
			explain: "%d to %d bytes",
		},
		{
			what: "Idempotency-Key", goMax: sale.MaxIdempotencyKeyBytes, constraint: "idempotency_keys_key_valid",
			bounds:  regexp.MustCompile(`\{(\d+),(\d+)\}`),
			schema:  []string{"components", "parameters", "IdempotencyKey", "schema"},
			explain: "%d to %d",
		},
	}
	for _, l := range limits {
		defs := checks(l.constraint)
		t.Logf("%s: %d bytes in Go; %s", l.what, l.goMax, strings.Join(defs, "; "))
		for _, def := range defs {
			m := l.bounds.FindStringSubmatch(def)
			if m == nil {
				t.Errorf("%s: CHECK %s: cannot find its bounds in %q", l.what, l.constraint, def)
				continue
			}
			if lo, hi := atoi(t, m[1]), atoi(t, m[2]); lo != 1 || hi != l.goMax {
				t.Errorf("%s: %s allows %d to %d, Go allows 1 to %d", l.what, def, lo, hi, l.goMax)
			}
		}
		schema := walk(t, doc, l.schema)
		if lo, hi := schema["minLength"], schema["maxLength"]; lo != 1.0 || hi != float64(l.goMax) {
			t.Errorf("%s: OpenAPI %s has minLength %v, maxLength %v; Go allows 1 to %d", l.what, strings.Join(l.schema, "."), lo, hi, l.goMax)
		}
		desc, _ := schema["description"].(string)
		if desc == "" {
			desc, _ = walk(t, doc, l.schema[:len(l.schema)-1])["description"].(string) // a parameter's own
		}
		want := fmt.Sprintf(l.explain, 1, l.goMax)
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(want) + `\b`).MatchString(desc) {
			t.Errorf("%s: OpenAPI description %q does not say %q", l.what, desc, want)
		}
	}
}

func walk(t *testing.T, doc map[string]any, path []string) map[string]any {
	t.Helper()
	node := doc
	for _, k := range path {
		next, ok := node[k].(map[string]any)
		if !ok {
			t.Fatalf("OpenAPI document: no object at %s", strings.Join(path, "."))
		}
		node = next
	}
	return node
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
