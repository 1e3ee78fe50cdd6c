#!/bin/sh
# Two `p2plink usb` peers inside the usbrig VM, one on each end of the
# cable (end A on the first bus, end B on the second):
#   1. a file sent A -> B and verified by SHA-256;
#   2. a 1 MiB file sent B -> A while A's end is unplugged and replugged in
#      the middle (after the sender reports 10%); the transfer must resume,
#      the file arrive whole and both commands exit 0;
#   3. round trips of `p2plink usb ping` against `serve` (a figure).
# Run by guest-init.sh; exits non-zero on the first failure. Needs
# P2PLINK_USBRIG_CTL (the gadget's control FIFO).

P=/usbrig/bin/p2plink
W=/tmp/peers
DEV="--device ${USBRIG_VID:-067b}:${USBRIG_PID:-25a1}"
rm -rf $W && mkdir -p $W/ida $W/idb $W/ina $W/inb
BUS_A=$(cat /sys/bus/usb/devices/usb1/busnum 2>/dev/null || echo 1)
BUS_B=$(cat /sys/bus/usb/devices/usb2/busnum 2>/dev/null || echo 2)

say() { echo "peers: $*"; }
fail() {
	say "FAIL at $(now) s guest time: $*"
	for f in $W/*.log; do echo "--- $f"; tail -n 30 "$f"; done
	exit 1
}
ctl() {
	before=$(cat $P2PLINK_USBRIG_STATE)
	echo "$1" >$P2PLINK_USBRIG_CTL
	i=0
	while [ "$(cat $P2PLINK_USBRIG_STATE)" = "$before" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
now() { cut -d' ' -f1 /proc/uptime; }

# 1. A -> B
dd if=/dev/urandom of=$W/one.bin bs=1024 count=192 2>/dev/null
t0=$(now)
timeout 45 $P usb $DEV --bus $BUS_B --config $W/idb --name peer-b -v --dir $W/inb receive >$W/recv1.log 2>&1 &
rpid=$!
timeout 45 $P usb $DEV --bus $BUS_A --config $W/ida --name peer-a -v send $W/one.bin >$W/send1.log 2>&1
src=$?
wait $rpid
rrc=$?
say "A: $(grep '^sent' $W/send1.log)"
[ "$(sha256sum <$W/one.bin)" = "$(sha256sum <$W/inb/one.bin 2>/dev/null)" ] || fail "file A -> B missing or different"
[ $src = 0 ] || fail "file A -> B arrived whole, but send exited $src"
[ $rrc = 0 ] || fail "file A -> B arrived whole, but receive exited $rrc"
say "192 KiB A -> B verified in $(awk -v a=$t0 -v b=$(now) 'BEGIN{printf "%.1f", b-a}') s (emulated)"

# 2. B -> A with A's end unplugged and replugged mid-transfer: the unplug
#    comes once the sender reports at least 10% and before it is done.
dd if=/dev/urandom of=$W/two.bin bs=1024 count=1024 2>/dev/null
t0=$(now)
timeout 90 $P usb $DEV --bus $BUS_A --config $W/ida --name peer-a -v --dir $W/ina receive >$W/recv2.log 2>&1 &
rpid=$!
timeout 90 $P usb $DEV --bus $BUS_B --config $W/idb --name peer-b -v send $W/two.bin >$W/send2.log 2>&1 &
spid=$!
progress() { # the sender's last whole percentage, from its progress lines
	tr '\r' '\n' 2>/dev/null <$W/send2.log | grep -oE '[0-9]+(\.[0-9]+)?%' | tail -n1 | cut -d. -f1 | tr -d %
}
i=0
while :; do
	p=$(progress)
	[ -n "$p" ] && [ "$p" -ge 10 ] && break
	kill -0 $spid 2>/dev/null || fail "send B -> A ended before reaching 10%"
	i=$((i + 1))
	[ $i -le 600 ] || fail "send B -> A made no progress in 60 s"
	sleep 0.1
done
[ "$p" -lt 100 ] && kill -0 $spid 2>/dev/null ||
	fail "send B -> A finished before the unplug could come (make the file larger)"
ctl "unplug a"
say "unplugged A at $(now) s with the sender at ${p}%"
sleep 1
ctl "plug a"
say "plugged A back at $(now) s"
wait $spid
src=$?
wait $rpid
rrc=$?
say "B: $(grep '^sent' $W/send2.log)"
[ "$(sha256sum <$W/two.bin)" = "$(sha256sum <$W/ina/two.bin 2>/dev/null)" ] || fail "file B -> A missing or different after the replug"
[ $src = 0 ] || fail "file B -> A arrived whole across the replug, but send exited $src"
[ $rrc = 0 ] || fail "file B -> A arrived whole across the replug, but receive exited $rrc"
say "1 MiB B -> A verified across an unplug/replug in $(awk -v a=$t0 -v b=$(now) 'BEGIN{printf "%.1f", b-a}') s (emulated)"

# 3. Round trips of `p2plink usb ping` against `serve` on the far end.
timeout 60 $P usb $DEV --bus $BUS_B --config $W/idb --name peer-b --dir $W/inb serve >$W/serve3.log 2>&1 &
vpid=$!
timeout 45 $P usb $DEV --bus $BUS_A --config $W/ida --name peer-a --count 50 ping >$W/ping3.log 2>&1
prc=$?
kill $vpid 2>/dev/null
wait $vpid 2>/dev/null
[ $prc = 0 ] || fail "ping exited $prc"
say "p2plink usb ping (emulated): $(grep 'round trips' $W/ping3.log)"
exit 0
