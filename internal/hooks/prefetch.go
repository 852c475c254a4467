package hooks

import "context"

// PrefetchLaunch starts reading, from the Storage of engine (a
// *core.Engine), the launch record that handle names, before the
// browser's session is loaded and its id known, so that the two reads
// overlap. It returns ctx with the read in it, where the engine's Ready of
// that handle finds it (and checks the record against the browser, as it
// does a record it reads itself), and a stop function that cancels the
// read and waits for it to end, which the caller must call once the
// request is served. It starts nothing for a Storage in the process. The
// core package sets it when it is initialised.
var PrefetchLaunch func(ctx context.Context, engine any, handle string) (context.Context, func())

// PrefetchesLaunch reports whether PrefetchLaunch would start a read from
// the Storage of engine (a *core.Engine) as it is now. The core package
// sets it.
var PrefetchesLaunch func(engine any) bool
