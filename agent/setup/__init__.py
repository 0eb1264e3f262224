"""`camera-agent setup`: its command; the wizard is agent/setup_wizard.py."""
