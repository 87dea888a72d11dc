package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// The service's own routes: what it is (GET /), whether it runs and
// whether it can serve.

var endpoints = []string{
	"POST /checkout?user_id=U&id=N",
	"POST /purchase?code=C",
	"GET /sales/current",
	"GET /sales/current/items?after=&limit=",
	"GET /sales/current/events",
	"GET /sales/{sale_id}",
	"GET /users/{user_id}/purchases?sale_id=",
	"GET /items/{sale_id}/{item_id}/image.svg",
	"GET /healthz",
	"GET /health",
	"GET /readyz",
	"GET /openapi.json",
}

func (s *Server) index(c echo.Context) error {
	c.Response().Header().Add("Vary", "Accept")
	if prefersHTML(c.Request().Header.Get("Accept")) {
		return s.page(c) // page.go
	}
	return c.JSON(http.StatusOK, map[string]any{
		"name": "flashsale", "version": s.version, "endpoints": endpoints, "openapi": "/openapi.json",
	})
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.sales.Ready(c.Request().Context()); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
