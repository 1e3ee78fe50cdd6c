module github.com/p2plink/p2plink

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/flynn/noise v1.1.0
	github.com/google/gousb v1.1.3
	github.com/klauspost/compress v1.20.4
	github.com/klauspost/cpuid/v2 v2.0.12
	github.com/mdlayher/packet v1.2.0
	github.com/zeebo/blake3 v0.2.4
	go.bug.st/serial v1.8.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require (
	github.com/mdlayher/socket v0.7.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
)
