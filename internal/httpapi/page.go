package httpapi

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// pageFiles is the live sale page: plain HTML, CSS and JavaScript, no build
// step, nothing fetched from elsewhere.
//
//go:embed page
var pageFiles embed.FS

// pageHeaders keep the page to this server's own scripts, styles, images
// and event stream.
func pageHeaders(h http.Header, contentType string) {
	h.Set(echo.HeaderContentType, contentType)
	// The files change with the binary; revalidating them is cheap.
	h.Set("Cache-Control", "no-cache")
	// Images may be a shop's own, wherever it keeps them.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: http:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}

// page answers GET / for browsers.
func (s *Server) page(c echo.Context) error {
	return s.servePageFile(c, "index.html")
}

// pageFile answers GET /page/{file}: the page's stylesheet and script.
func (s *Server) pageFile(c echo.Context) error {
	return s.servePageFile(c, c.Param("file"))
}

func (s *Server) servePageFile(c echo.Context, name string) error {
	if name != path.Base(name) || strings.HasPrefix(name, ".") {
		return echo.ErrNotFound
	}
	b, err := fs.ReadFile(pageFiles, "page/"+name)
	if err != nil {
		return echo.ErrNotFound
	}
	if name == "index.html" && len(s.authed) > 0 {
		// The page then sends the shopper's token instead of asking who
		// they are.
		b = bytes.Replace(b, []byte(`<body data-auth="off">`), []byte(`<body data-auth="bearer">`), 1)
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = echo.MIMEOctetStream
	}
	pageHeaders(c.Response().Header(), ct)
	return c.Blob(http.StatusOK, ct, b)
}

// prefersHTML reports whether an Accept header ranks text/html above
// application/json, as browsers' do. Clients that send none, */* (curl) or
// rank both the same get the JSON index: the API is the default.
func prefersHTML(accept string) bool {
	html, json := acceptQuality(accept, "text/html"), acceptQuality(accept, "application/json")
	return html > 0 && html > json
}

// acceptQuality is the q value that accept gives mediaType, from the most
// specific range that matches it (RFC 9110, section 12.5.1); 0 when none does.
func acceptQuality(accept, mediaType string) float64 {
	typ, _, _ := strings.Cut(mediaType, "/")
	best, q := -1, 0.0
	for _, r := range strings.Split(accept, ",") {
		rng, params, err := mime.ParseMediaType(strings.TrimSpace(r))
		if err != nil {
			continue
		}
		specificity := -1
		switch {
		case rng == mediaType:
			specificity = 2
		case rng == typ+"/*":
			specificity = 1
		case rng == "*/*":
			specificity = 0
		}
		if specificity <= best {
			continue
		}
		rq := 1.0
		if v, ok := params["q"]; ok {
			if rq, err = strconv.ParseFloat(v, 64); err != nil || rq < 0 || rq > 1 {
				continue
			}
		}
		best, q = specificity, rq
	}
	return q
}
