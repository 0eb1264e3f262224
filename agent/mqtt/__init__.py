"""The registry link: every topic, every payload, and one thin paho wrapper."""
