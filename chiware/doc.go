// Package chiware mounts SMART App Launch in a chi router: the launch,
// callback and logout routes, and app routes behind the ready middleware.
//
//	s := chiware.Smart(cfg) // GET /launch, GET /callback, POST /logout
//	s.Get("/", page)        // app routes run behind the ready middleware
//	r.Mount("/fhir", s)
//
// A handler gets the launch's client with [ReadyClient] and reads FHIR with
// it; [Error] answers a failure as the SMART routes do:
//
//	func page(w http.ResponseWriter, r *http.Request) {
//		rc := chiware.ReadyClient(r)
//		var p Patient
//		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
//			chiware.Error(w, r, err)
//			return
//		}
//		…
//	}
//
// Routes outside the mount use [Router.RequireReady] or [Router.LoadReady],
// which share the Router's engine and caches. Everything else, from the
// session cookie to the error page, is the adapters package's.
package chiware
