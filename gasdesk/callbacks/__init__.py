"""Peak-hour guidance and callback requests that keep the resident's place in the queue."""
