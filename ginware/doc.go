// Package ginware mounts SMART App Launch in a gin engine: the launch,
// callback and logout routes, and app routes behind the ready middleware.
//
//	s := ginware.Smart(r.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
//	s.GET("/", page)                          // app routes run behind the ready middleware
//
// A handler gets the launch's client with [ReadyClient] and reads FHIR with
// it; [Error] answers a failure as the SMART routes do:
//
//	func page(c *gin.Context) {
//		rc := ginware.ReadyClient(c)
//		var p Patient
//		if err := rc.FHIR().Read(c.Request.Context(), rc.Patient().String(), &p); err != nil {
//			ginware.Error(c, err)
//			return
//		}
//		c.JSON(http.StatusOK, p)
//	}
//
// Routes outside the group use [Group.RequireReady] or [Group.LoadReady],
// sharing the group's engine and caches. The middleware wraps c.Writer so
// that the session is saved, and its cookie set, before the headers go out.
package ginware
