"""Home sensing (全方位感知网络): device registry, telemetry schema, MQTT ingest and storage."""
