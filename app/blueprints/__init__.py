"""REST blueprints, one per area, each object named `bp`."""
