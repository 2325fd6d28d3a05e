"""The shared model: values and rules that every service agrees on."""
