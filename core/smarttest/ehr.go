package smarttest

import (
	"html/template"
	"net/http"
)

// ehrPage is the EHR's patient list. Each launch is a plain link, so a
// headless browser can click it by id ("launch-pat-1").
const ehrPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>smarttest EHR</title></head>
<body>
<h1>smarttest EHR</h1>
{{if not .App}}<p id="no-app">No app to launch: Options.AppLaunchURL is empty.</p>{{end}}
<table>
<thead><tr><th>Patient</th><th>Name</th><th>Gender</th><th>Birth date</th><th></th></tr></thead>
<tbody>
{{range .Rows}}<tr id="patient-{{.ID}}"><td>{{.ID}}</td><td>{{.Name}}</td><td>{{.Gender}}</td><td>{{.BirthDate}}</td>
<td>{{if .Launch}}<a id="launch-{{.ID}}" href="{{.Launch}}">Launch app</a>{{end}}</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`

// ehrRow is one patient on the EHR page.
type ehrRow struct {
	PatientSummary
	Launch string
}

// serveEHR is the EHR page: the patients, each with a link that launches
// Options.AppLaunchURL for that patient, their first encounter and the user
// Practitioner/prac-1.
func (s *Server) serveEHR(w http.ResponseWriter, r *http.Request) {
	iss := s.root(r) + "/fhir"
	var rows []ehrRow
	for _, p := range s.Patients() {
		row := ehrRow{PatientSummary: p}
		if s.opts.AppLaunchURL != "" {
			row.Launch = s.ehrLaunchURL(iss, s.opts.AppLaunchURL, LaunchContext{
				Patient:           p.ID,
				Encounter:         s.firstEncounter(p.ID),
				FHIRUser:          "Practitioner/prac-1",
				NeedPatientBanner: true,
			})
		}
		rows = append(rows, row)
	}
	tmpl := template.Must(template.New("ehr").Parse(ehrPage))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	tmpl.Execute(w, map[string]any{"App": s.opts.AppLaunchURL != "", "Rows": rows})
}

// firstEncounter returns the id of a patient's first encounter, or "".
func (s *Server) firstEncounter(patient string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range s.store.order {
		res := s.store.byKey[key]
		if !res.deleted && str(res.body["resourceType"]) == "Encounter" && refersTo(res.body, "Patient/"+patient) {
			return str(res.body["id"])
		}
	}
	return ""
}
