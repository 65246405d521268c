# The node as a kexec tree: the whole system, its Nix store packed into the
# initrd as a squashfs, runs from RAM. nixpkgs' netboot module provides
# config.system.build.kexecTree (kernel, initrd, kexec-boot script,
# netboot.ipxe); `homestaker kexec` loads the same kernel and initrd after
# checking RAM, SSH keys and the network.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/installer/netboot/netboot.nix") ];

  netboot.squashfsCompression = "zstd -Xcompression-level 6";
  boot.initrd.compressor = "zstd";
}
