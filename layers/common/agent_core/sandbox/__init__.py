"""Running code a model wrote: the request and result (protocol), the call to the sandbox function (client), and what
that function does (runner): stage the files, start the child under an isolation backend (isolation, process), collect
output/ within bounds (workspace), and leave nothing behind (cleanup)."""
