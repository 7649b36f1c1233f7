"""After the day: session feedback, speakers' figures and the public documentation page."""
