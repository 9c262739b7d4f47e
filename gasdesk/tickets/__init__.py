"""Work orders (工单): types, routing, SLA, the state machine, crew write-back and history."""
