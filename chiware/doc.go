// Package chiware mounts SMART App Launch in a chi router.
//
//	s := chiware.Smart(cfg)          // GET /launch, GET /callback, POST /logout
//	s.Get("/", page)                 // app routes run behind the ready middleware
//	r.Mount("/fhir", s)
//
// A handler gets the launch's client with [ReadyClient] (or
// core.FromContext(r.Context())) and reads FHIR with it:
//
//	func page(w http.ResponseWriter, r *http.Request) {
//		rc := chiware.ReadyClient(r)
//		var p Patient
//		err := rc.Patient().Read(r.Context(), &p)
//		…
//	}
//
// Routes outside the mount use [Router.RequireReady] or [Router.LoadReady],
// which share the Router's engine and caches. Everything else, from the
// session cookie to the error page, is the adapters package's.
package chiware
