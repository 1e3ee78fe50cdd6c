module github.com/p2plink/p2plink

go 1.26.8

require (
	github.com/creack/pty v1.1.24 // indirect
	github.com/flynn/noise v1.1.0 // indirect
	github.com/google/gousb v1.1.3 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/mdlayher/packet v1.2.0 // indirect
	github.com/mdlayher/socket v0.7.0 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
	go.bug.st/serial v1.8.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)
