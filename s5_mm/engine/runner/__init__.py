from .loops import S4PTeacherStudentTestLoop, S4PTeacherStudentValLoop

__all__ = ['S4PTeacherStudentTestLoop', 'S4PTeacherStudentValLoop']
