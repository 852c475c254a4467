// Package scope reads SMART on FHIR scopes, so an app can ask what a launch
// may do instead of comparing strings.
//
// A [Set] is a parsed scope string, as an app requests it or as an EHR
// grants it. It understands the resource scopes of SMART App Launch 1
// (patient/Observation.read, user/*.write, system/*.*) and 2
// (patient/Observation.rs, user/*.cruds, with an optional query such as
// ?category=laboratory), and keeps every other token (openid, fhirUser,
// launch, launch/patient, offline_access) as it is:
//
//	granted := scope.Parse(rc.Context().Scope)
//	if granted.Allows("patient", "Observation", scope.Read|scope.Search) { … }
//	missing := granted.Missing(scope.Parse(requested))
//
// Version 1's read is version 2's rs, write is cud, and * is cruds. A
// resource type of * covers every type. A version 2 scope with a query
// grants only what the query selects: [Set.Allows] never counts it as the
// whole type, and [Set.Restrictions] returns its queries.
//
// A scope says what the app was allowed, never more than the EHR enforces:
// the FHIR server still decides each request.
package scope
