package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/sale"
)

// NewSoldOut is the API's HTTP stack with no database behind it: the same
// Echo application, middleware, error handler and JSON serializer as New,
// and a POST /checkout that reads, checks and rate-limits the request as
// the real one does, then answers as a sold-out sale does (409 sold_out,
// the same body, through the same error handler). cmd/httpceiling serves
// it so that the benchmark can measure what HTTP alone costs per checkout.
// GET /healthz and /readyz answer ok: there is nothing to wait for.
func NewSoldOut(opts Options) *Server {
	s := newStack(nil, opts)
	s.live = newLiveStreams(nil, 0) // no streams; HTTPServer's shutdown hook stops them
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.healthz)
	e.POST("/checkout", s.checkoutSoldOut, s.authed...)
	return s
}

func (s *Server) checkoutSoldOut(c echo.Context) error {
	req, err := s.checkoutRequest(c)
	if err != nil {
		return err
	}
	if req.RateLimited {
		return sale.ErrRateLimited // the real sale stores it, then answers so
	}
	return sale.ErrSoldOut
}
