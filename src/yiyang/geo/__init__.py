"""Geography (district > street > community > grid), households and organisations."""
