package fhir

import (
	"strings"

	"github.com/fhirware/smart/internal/fhirnames"
)

// standardOperations names the operations FHIR R4 defines that an app
// calls on an EHR's FHIR server: on patients' records ($everything,
// $lastn, $docref, $summary, $document, $stats, $match), on resources and
// their meta ($validate, $meta, $meta-add, $meta-delete), bulk data
// ($export), terminology ($expand, $lookup, $validate-code, $subsumes,
// $translate), questionnaires and plans ($populate, $apply), quality
// measures ($evaluate-measure, $data-requirements, $collect-data,
// $submit-data, $care-gaps) and messaging ($process-message). The list is
// fixed: an operation not on it is taken for an id, and kept out of error
// messages as ids are (see [Error.Error]).
const standardOperations = `
$everything $lastn $docref $summary $document $stats $match
$validate $meta $meta-add $meta-delete $export
$expand $lookup $validate-code $subsumes $translate
$populate $apply
$evaluate-measure $data-requirements $collect-data $submit-data $care-gaps
$process-message
`

// resourceTypes names the resource types of FHIR R4; read-only.
var resourceTypes = fhirnames.ResourceTypes

// pathWords is the set of the other path segments that are FHIR's own
// words rather than ids, and so stay in error messages (see
// [requestWords]): the standard operations, _history and _search;
// read-only.
var pathWords = wordSet(standardOperations + " _history _search")

// wordSet splits s at white space into a set.
func wordSet(s string) map[string]bool {
	words := strings.Fields(s)
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}
