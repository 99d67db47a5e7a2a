"""confirmation_web"""
