"""The smart-charging control loop and its enforcement over OCPP (spec/smart-charging.md §7)."""
