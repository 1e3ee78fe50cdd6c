package serialnet_test

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/serialnet"
)

// Open a USB-serial adapter by its stable name and exchange frames.
func ExampleOpen() {
	l, err := serialnet.Open("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K4L3P-if00-port0", serialnet.Config{
		Baud:   921600,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	switch {
	case errors.Is(err, serialnet.ErrNoSuchPort), errors.Is(err, serialnet.ErrPermission):
		log.Fatal(err) // the message lists the ports, or names the group to join
	case err != nil:
		log.Fatal(err)
	}
	defer l.Close()

	if _, err := l.WriteTo([]byte("hello"), link.PeerAddr); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, l.MTU())
	for {
		n, _, err := l.ReadFrom(buf)
		if errors.Is(err, link.ErrDisconnected) {
			log.Print(err) // unplugged: the Link reopens the port by itself
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q\n", buf[:n])
	}
}

// List the serial ports, as `p2plink ports` does.
func ExamplePorts() {
	ports, err := serialnet.Ports()
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range ports {
		fmt.Println(p) // /dev/ttyUSB0 (USB 0403:6001 FTDI FT232R USB UART, serial A10K4L3P)
	}
}
