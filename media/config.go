package media

// configTxt is the card's config.txt, which the Pi 4 firmware reads before
// it loads anything (https://www.raspberrypi.com/documentation/computers/config_txt.html).
// The kernel is the arm64 Image, started in 64-bit mode; the initrd is
// loaded right after it (followkernel), so no address is hard-coded; the
// firmware picks bcm2711-rpi-4-b.dtb (or the Pi 400's / CM4's) from the
// partition's root, applies overlays/ and hands the kernel cmdline.txt.
// enable_uart=1 gives a serial console on GPIO 14/15 (ttyS0, 115200 baud).
const configTxt = `# Written by homestaker: the Raspberry Pi 4 firmware reads this file first
# (https://www.raspberrypi.com/documentation/computers/config_txt.html).
# The node runs from RAM: the kernel and the initrd hold the whole system,
# and nothing on this card is read once they are loaded.
[pi4]
arm_64bit=1
kernel=Image
initramfs initrd followkernel
enable_uart=1

[all]
`

// ConfigTxtFor returns the config.txt homestaker writes onto every card.
func ConfigTxtFor() []byte { return []byte(configTxt) }
