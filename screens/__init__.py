"""The Textual console: screens and widgets on top of the engine in console/."""
