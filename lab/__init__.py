"""The lab: Debian 12 machines-in-a-box (systemd-nspawn + overlayfs + netns) for pgcascade."""
