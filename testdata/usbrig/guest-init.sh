#!/bin/busybox sh
# /init of the usbrig VM: load the USB host and gadget stack, start the
# two-ended bridge cable (gadget), run every test binary in /usbrig/tests,
# print one result line and power off. Built into the initramfs by ../run.

/bin/busybox --install -s /bin
export PATH=/bin HOME=/root TMPDIR=/tmp LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
mkdir -p /proc /sys /dev /run /tmp /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "usbrig: guest up after $(cut -d' ' -f1 /proc/uptime) s"

fail() {
	echo "usbrig: guest setup failed: $*"
	echo "USBRIG-RESULT: 0 passed, 1 failed (setup: $*)"
	poweroff -f
}

for m in usb-common usbcore udc-core dummy_hcd configfs libcomposite usb_f_fs; do
	[ -e /lib/modules/$m.ko ] || continue # built in
	args=""
	[ $m = dummy_hcd ] && args="num=2"
	insmod /lib/modules/$m.ko $args || fail "insmod $m"
done
mount -t configfs none /sys/kernel/config || fail "mount configfs"

. /usbrig/env
mkdir -p /run/usbrig
/usbrig/bin/gadget $USBRIG_GADGET_FLAGS -ready /run/usbrig/ready >/run/usbrig/gadget.log 2>&1 &
gadget_pid=$!

# Wait for the gadget to bind both ends and for both devices to enumerate.
i=0
while :; do
	n=0
	for d in /sys/bus/usb/devices/*; do
		[ "$(cat $d/idVendor 2>/dev/null)$(cat $d/idProduct 2>/dev/null)" = "${USBRIG_VID}${USBRIG_PID}" ] && n=$((n + 1))
	done
	[ -e /run/usbrig/ready ] && [ $n -ge 2 ] && break
	i=$((i + 1))
	if [ $i -gt 200 ]; then
		cat /run/usbrig/gadget.log
		fail "the two bridge ends did not enumerate ($n found)"
	fi
	kill -0 $gadget_pid 2>/dev/null || { cat /run/usbrig/gadget.log; fail "gadget exited"; }
	sleep 0.05
done
echo "usbrig: both ends enumerated after $(cut -d' ' -f1 /proc/uptime) s"

passed=0
failed=0
binfail=0
for t in /usbrig/tests/*.test; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .test)
	echo "usbrig: === $name"
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd /usbrig/tests && "$t" -test.v -test.timeout 120s $(eval echo \$USBRIG_ARGS_$name)) >/tmp/$name.out 2>&1
	rc=$?
	cat /tmp/$name.out
	p=$(grep -c '^--- PASS' /tmp/$name.out)
	f=$(grep -c '^--- FAIL' /tmp/$name.out)
	s=$(grep -c '^--- SKIP' /tmp/$name.out)
	passed=$((passed + p))
	failed=$((failed + f))
	if [ $rc -ne 0 ]; then
		binfail=$((binfail + 1))
		[ $f -eq 0 ] && failed=$((failed + 1))
	fi
	echo "usbrig: $name: exit $rc, $p passed, $f failed, $s skipped, $start..$(cut -d' ' -f1 /proc/uptime) s guest time"
done

for s in /usbrig/scripts/*.sh; do
	[ -e "$s" ] || continue
	echo "usbrig: === $(basename $s)"
	if sh "$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); binfail=$((binfail + 1)); fi
done

if [ $failed -gt 0 ]; then
	echo "usbrig: kernel log (last 40 lines):"
	dmesg | tail -n 40
fi
echo "usbrig: gadget log:"
tail -n 40 /run/usbrig/gadget.log
echo "usbrig: done after $(cut -d' ' -f1 /proc/uptime) s guest time"
echo "USBRIG-RESULT: $passed passed, $failed failed"
sync
poweroff -f
