// Package echoware mounts SMART App Launch in an echo (v4) app.
//
//	s := echoware.Smart(e.Group("/fhir"), cfg)  // GET /launch, GET /callback, POST /logout
//	s.GET("/", page)                            // app routes run behind the ready middleware
//
// A handler gets the launch's client with [ReadyClient] (or
// core.FromContext(c.Request().Context())) and reads FHIR with it:
//
//	func page(c echo.Context) error {
//		rc := echoware.ReadyClient(c)
//		var p Patient
//		if err := rc.Patient().Read(c.Request().Context(), &p); err != nil {
//			return err
//		}
//		return c.JSON(http.StatusOK, p)
//	}
//
// Routes outside the group use [Group.RequireReady] or [Group.LoadReady] as
// route middleware; they share the group's engine and caches. The browser
// session is saved before the response's first byte, also when a handler
// returns an error: the middleware hands the error to echo's error handler
// itself, then returns it. Everything else, from the session cookie to the
// error page, is the adapters package's.
package echoware
