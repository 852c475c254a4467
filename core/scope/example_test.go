package scope_test

import (
	"fmt"

	"github.com/fhirware/smart/core/scope"
)

func Example() {
	requested := scope.Parse("launch openid fhirUser patient/*.read offline_access")
	granted := scope.Parse("launch openid fhirUser patient/Patient.rs patient/Observation.rs?category=laboratory")

	fmt.Println(granted.Allows("patient", "Patient", scope.Read))
	fmt.Println(granted.Allows("patient", "Observation", scope.Search))
	fmt.Println(granted.Restrictions("patient", "Observation", scope.Search))
	fmt.Println(granted.Missing(requested))
	// Output:
	// true
	// false
	// [map[category:[laboratory]]]
	// [patient/*.read offline_access]
}
