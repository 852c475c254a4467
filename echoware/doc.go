// Package echoware mounts SMART App Launch in an echo (v4) app: the launch,
// callback and logout routes, and app routes behind the ready middleware.
//
//	s := echoware.Smart(e.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
//	s.GET("/", page)                           // app routes run behind the ready middleware
//
// A handler gets the launch's client with [ReadyClient] and reads FHIR with
// it; [Error] answers a failure as the SMART routes do:
//
//	func page(c echo.Context) error {
//		rc := echoware.ReadyClient(c)
//		var p Patient
//		if err := rc.FHIR().Read(c.Request().Context(), rc.Patient().String(), &p); err != nil {
//			return echoware.Error(c, err)
//		}
//		return c.JSON(http.StatusOK, p)
//	}
//
// Routes outside the group use [Group.RequireReady] or [Group.LoadReady] as
// route middleware, sharing the group's engine and caches. The browser
// session is saved before the response's first byte, also when a handler
// returns an error: the middleware hands the error to echo's error handler
// itself, then returns it.
package echoware
