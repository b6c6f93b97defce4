"""Generated from proto/termdesk/v1 by `proto/generate.sh`: never edit, regenerate."""
