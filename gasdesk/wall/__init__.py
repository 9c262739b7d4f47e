"""The wall screen (大屏) at ``/wall``, pushed live over ``/ws/wall``, its thresholds, and the agent's own dashboard."""
