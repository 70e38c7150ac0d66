module github.com/lanmsg/lanmsg

go 1.26.0

require github.com/rs/zerolog v1.35.1

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/hashicorp/mdns v1.0.7 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	golang.org/x/tools v0.48.0 // indirect
)
