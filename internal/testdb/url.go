package testdb

import (
	"net/url"
	"strings"
)

// replaceDatabase returns connURL pointing at database name instead of old.
// Handles both URL and keyword/value connection strings.
func replaceDatabase(connURL, old, name string) string {
	if u, err := url.Parse(connURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	if old != "" && strings.Contains(connURL, "dbname="+old) {
		return strings.Replace(connURL, "dbname="+old, "dbname="+name, 1)
	}
	return connURL + " dbname=" + name
}
