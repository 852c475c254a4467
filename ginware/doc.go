// Package ginware mounts SMART App Launch in a gin engine.
//
//	s := ginware.Smart(r.Group("/fhir"), cfg)  // GET /launch, GET /callback, POST /logout
//	s.GET("/", page)                           // app routes run behind the ready middleware
//
// A handler gets the launch's client with [ReadyClient] (or
// core.FromContext(c.Request.Context())) and reads FHIR with it:
//
//	func page(c *gin.Context) {
//		rc := ginware.ReadyClient(c)
//		var p Patient
//		if err := rc.Patient().Read(c.Request.Context(), &p); err != nil {
//			c.AbortWithStatus(http.StatusBadGateway)
//			return
//		}
//		c.JSON(http.StatusOK, p)
//	}
//
// Routes outside the group use [Group.RequireReady] or [Group.LoadReady] as
// route middleware; they share the group's engine and caches. The
// middleware wraps c.Writer so that the browser session is saved, and its
// cookie set, before the headers go out: gin.WrapH over the session
// manager's LoadAndSave alone would let gin send them first. Everything
// else, from the session cookie to the error page, is the adapters
// package's.
package ginware
