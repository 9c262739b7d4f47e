"""Smart appointments (智能预约): the service catalogue, time slots with capacity, booking and progress."""
